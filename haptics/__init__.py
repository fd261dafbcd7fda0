"""Instrument sources (STP/1 serial, NDI, OpenIGTLink, replay, mouse), calibration, filtering. No Qt."""
