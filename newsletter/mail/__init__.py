"""newsletter/mail"""
