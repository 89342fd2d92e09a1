"""Qt item models over the services' views; each is tested without widgets."""
