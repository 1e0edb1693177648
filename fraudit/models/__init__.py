"""Face-model architectures fraudit knows, recognised from tensor names and shapes."""
