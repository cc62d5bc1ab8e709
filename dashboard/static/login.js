if (location.search.includes('failed=1')) document.getElementById('failed').hidden = false;
