"""The local browser UI (`facelab ui`): the interactive steps as web pages driving the same library functions as
the CLI. Only files inside the workspace are served or written; every request needs the session's token."""
