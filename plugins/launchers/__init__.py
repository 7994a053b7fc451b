"""Built-in launchers: how a sweep's runs are started (processes on this machine, Ray tasks, Slurm jobs)."""
