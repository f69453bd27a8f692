"""callcenterd: a contact-center engine for Asterisk."""

__version__ = "0.1.0"
