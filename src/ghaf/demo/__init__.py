"""The demo scenario (a UAE bank's card transactions) and the whole loop driving the services."""
