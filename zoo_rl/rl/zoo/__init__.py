"""The zoo: its members and their files, the manifest, the Zoo-Tuning extractor, the start
(reference choice, channel matching, gate prior) and the measures it is chosen by."""
