"""Stand-ins for hardware and time: register-level chip models and a manual clock."""
