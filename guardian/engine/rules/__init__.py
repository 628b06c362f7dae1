"""Rule files: the YAML format (``model``), loading with line numbers (``loader``), compiling."""
