"""Faces: the embedded synthetic face world and loaders for real face folders."""
