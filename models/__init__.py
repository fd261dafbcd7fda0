"""The anatomical phantom, instruments and implants, frames and units. numpy-level code, no Qt."""
