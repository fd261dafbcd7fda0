"""The built-in patient generator: a lumbar spine, sacrum and pelvis with labels and landmarks."""
