"""newsletter/sending"""
