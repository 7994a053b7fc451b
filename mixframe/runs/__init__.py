"""The run store and the Python API: run folders (``folder``), the callbacks that write them, ``train`` /
``resume`` / ``load_run`` / ``Run`` (``api``) and evaluation. Built on the kernel; never imports a tool or the CLI."""
