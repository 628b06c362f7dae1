"""The ``guardian`` command line."""
