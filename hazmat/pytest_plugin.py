"""pytest plugin: collects task.yaml files as capability items (issue 7; filled in later)."""
