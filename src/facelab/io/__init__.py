"""Everything that reads or writes files: videos, frames, aligned faces."""
