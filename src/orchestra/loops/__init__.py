"""Reconcilers on a shared work-queue engine: the control plane's loops."""
