"""The paper's studies (Tables 2-5, Figures 3-4) on our data: `ccl4rec experiment`."""
