# SPDX-License-Identifier: GPL-2.0-only
# bench/real: Perl object churn (make bench, "real programs"): blessed
# hashes built, linked, sorted and dropped; prints a checksum.
use strict;
use warnings;

package Node;
sub new { my ($c, %a) = @_; return bless { %a, kids => [] }, $c }

package main;
my $n = shift // 150000;
my $sum = 0;
for my $round (1 .. 3) {
    my @all;
    for my $i (1 .. $n) {
        my $k = ($i * 2654435761 + $round) % 1000003;
        my $node = Node->new(id => $k, name => "node$k", data => "x" x ($k % 61));
        push @{ $all[$k % 1000]->{kids} }, $node if $all[$k % 1000];
        push @all, $node;
    }
    my @sorted = sort { $a->{name} cmp $b->{name} } @all;
    $sum += $sorted[$_]->{id} * ($_ % 7) for 0 .. $#sorted;
    my %by = map { ($_->{id} % 4099) => scalar @{ $_->{kids} } } @all;
    $sum += $_ for values %by;
    $sum %= 1000000007;
}
print "$sum\n";
