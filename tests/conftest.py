"""Shared test configuration: the fake API server's fixtures are available to every test."""

pytest_plugins = ["fakekube.fixtures"]
