"""Energy sharing: per-quarter-hour allocation of shared production, the representative's files, billing."""
