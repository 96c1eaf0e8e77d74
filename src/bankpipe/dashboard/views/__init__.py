"""The dashboard's pages: Streamlit runs each file as a script (see app.py); nothing imports them.

The folder is not called `pages/`: Streamlit would take that for its older file-based navigation
and flash the file names in the sidebar before `st.navigation` replaces them.
"""
