"""The control plane's resources, one module each."""
