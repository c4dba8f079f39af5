"""Serving designs measured by ``make bench`` beside the service, not built into ``service/``.

``split_conf`` / ``split_wsgi``: the service's model process (``service.inference_process``)
behind gevent workers, an event loop per worker (see docs/performance.md for the figures).
"""
