"""C-arm geometry, DRR rendering, instrument projection, the image chain and dose. No Qt."""
