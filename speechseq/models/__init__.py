"""speechseq.models"""
