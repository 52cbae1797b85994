
sst2

sst2/dev.tsv