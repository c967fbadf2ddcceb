"""Plain file names: the only kind of name facelab takes from a file it reads.

Names come from places a stranger can write: a faceset's rename journal, a face's metadata (``source_filename``,
``face_index``), a DeepFaceLab face. Joined to a folder, a name like ``../x`` or ``/etc/x`` would reach outside
it, so every such name is checked with ``is_plain_name`` before it is used in a path.
"""

from __future__ import annotations

from typing import Any

# Longest name most file systems accept (ext4, NTFS, APFS: 255 bytes / UTF-16 units).
MAX_NAME_BYTES = 255


def is_plain_name(name: Any) -> bool:
    """True when ``name`` is a str naming one entry inside a folder: not empty, not ``.`` or ``..``, no path
    separator (``/`` or ``\\``, whatever the OS), no NUL, at most MAX_NAME_BYTES in UTF-8."""
    if not isinstance(name, str) or name in ("", ".", ".."):
        return False
    if "/" in name or "\\" in name or "\0" in name:
        return False
    try:
        return len(name.encode("utf-8")) <= MAX_NAME_BYTES
    except UnicodeEncodeError:  # lone surrogates: not a name any file system stores
        return False
