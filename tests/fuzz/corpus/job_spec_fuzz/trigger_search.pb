
sst2*<
"
 

a fine film

a dull film
sst2/dev.tsv2