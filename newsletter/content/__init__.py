"""newsletter/content"""
