"""The one error type the domain raises: its message must tell a person what to do."""


class CodebError(Exception):
    """Invalid input or an illegal transition; safe to show to the user as is."""
