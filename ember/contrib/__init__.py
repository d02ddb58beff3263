"""Code that is not part of Ember's core API: teaching and experimental modules (as Pyro's ``pyro.contrib``)."""
