"""Placeholder."""
import click

deadlines_group = click.Group("deadlines", help="办理时限")
