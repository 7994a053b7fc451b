"""Tools built on the API: sweeps, interpolation figures, pictures, reports and statistics. Never imported by the
kernel or the run store."""
