"""Router: turns events into cases and assigns each to its departments."""
