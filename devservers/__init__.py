"""Development tooling: private PostgreSQL and Redis servers on this machine.

``devservers.servers`` finds the binaries, picks free ports, starts and stops the servers and
creates databases; ``devservers.localrun`` is the trial run of ``run.py`` without
DATABASE_URL, and ``tests/servers.py`` the test suite's choice of servers. Neither is part of
the web service: ``service``, ``tasks``, ``cache`` and ``sql`` never import this package.
"""
