"""Video-generation job queue on Temporal."""
