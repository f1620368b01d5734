"""Plumbing every layer may use, with no config: errors, io, run directories, device, distributed env,
registries, plugins, optional extras."""
