"""Python serving frameworks the bench compares against, each serving the shipped bundle.

They run from ``.venv-bench`` (the ``bench`` extra), never from the service's environment.
"""
