"""Placeholder."""
import click

staff_group = click.Group("staff", help="工作人员账号")
unit_group = click.Group("unit", help="责任单位")
