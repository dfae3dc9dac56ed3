"""Public feedback intake service for a district discipline inspection office.

``feedback_app.app.create_app`` wires it; ``docs/architecture.md`` shows the layers. Importing this
package (as every module of it does) loads nothing else.
"""
