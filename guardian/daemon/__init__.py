"""The daemon: lifecycle, consume loop, control plane and hot reload."""
