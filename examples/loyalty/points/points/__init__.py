"""points: the loyalty program's ledger.

Contributors earn points from GitHub webhooks (a commit is 1 point, a completed issue 5) and
spend them on rewards through an internal debit endpoint used by the rewards service. The WSGI
application is built by :func:`points.app.create_app`.
"""
