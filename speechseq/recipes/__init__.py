"""speechseq.recipes"""
