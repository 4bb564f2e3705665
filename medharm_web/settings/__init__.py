"""Settings modules: ``base`` holds every setting; ``test`` and ``production`` only override."""
