#!/usr/bin/perl
# make-mmdb.pl OUT LAYOUT [NET=CC ...]: a small MaxMind DB of countries for
# the tests,
# with Debian's libmaxmind-db-writer-perl. LAYOUT "maxmind" stores the code
# at country/iso_code (GeoIP2/GeoLite2), "ipdb" at country_code
# (ip-location-db). Documentation and private ranges only.
use strict;
use warnings;
use MaxMind::DB::Writer::Tree;

my ($out, $layout, @extra) = @ARGV;
die "usage: make-mmdb.pl OUT maxmind|ipdb\n"
    unless defined $layout && $layout =~ /^(maxmind|ipdb)$/;

my %countries = (
	'192.0.2.0/24'		=> 'FR',
	'198.51.100.0/24'	=> 'DE',
	'203.0.113.0/24'	=> 'KP',
	'10.0.0.0/16'		=> 'US',
	'10.1.0.0/16'		=> 'GB',
	'2001:db8::/48'		=> 'JP',
	'2001:db8:1::/48'	=> 'BR',
);

for (@extra) {
	my ($net, $cc) = split /=/;
	$countries{$net} = $cc;
}

my %types = $layout eq 'maxmind'
    ? (country => 'map', iso_code => 'utf8_string')
    : (country_code => 'utf8_string');

my $tree = MaxMind::DB::Writer::Tree->new(
	ip_version		=> 6,
	record_size		=> 24,
	database_type		=> "socksgw-test-$layout",
	languages		=> ['en'],
	description		=> { en => 'socksgw test countries' },
	remove_reserved_networks => 0,
	alias_ipv6_to_ipv4	=> 1,
	map_key_type_callback	=> sub { $types{ $_[0] } },
);
for my $net (sort keys %countries) {
	my $cc = $countries{$net};
	$tree->insert_network($net, $layout eq 'maxmind'
	    ? { country => { iso_code => $cc } }
	    : { country_code => $cc });
}
open(my $fh, '>:raw', $out) or die "$out: $!\n";
$tree->write_tree($fh);
close($fh) or die "$out: $!\n";
