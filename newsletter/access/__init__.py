"""newsletter/access"""
