"""Small demo services that ship with the project (the demo hotline's order lookup)."""
