"""Tests of models.io: patient files, imports and meshes."""
