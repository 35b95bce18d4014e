"""Reading and writing images, manifests and contour files."""
