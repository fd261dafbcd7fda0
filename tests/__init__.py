"""fluorosim tests, mirroring the packages."""
